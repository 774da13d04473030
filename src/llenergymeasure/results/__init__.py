"""Result files: layout and atomic writes, aggregation, listing."""
