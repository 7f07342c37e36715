"""Paper tables and figures, collected from run outputs."""
