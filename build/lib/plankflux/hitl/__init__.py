"""Human-in-the-loop domain adaptation (docs/paper_a.md): voting, proposal folders,
verification ingest, minboost and a simulated expert."""
