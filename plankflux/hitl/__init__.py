"""Human-in-the-loop domain adaptation (DESIGN §4): voting, proposal folders,
verification ingest, minboost and a simulated expert."""
