"""Landing -> raw schema: one spec-driven loader, quarantine, batches and watermarks."""
