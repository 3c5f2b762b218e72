"""The read side: row shapes, the abstract read model, the projections and the runner."""
