"""Data-quality checks: Great Expectations suites on raw batches and marts, the gate and the publish."""
