"""``plankflux review``: verify a proposal folder in a local web page (docs/paper_a.md, step 4)."""
