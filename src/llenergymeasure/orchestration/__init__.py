"""Starting workers, running them, and collecting their results."""
