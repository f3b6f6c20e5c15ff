"""REST API of the batch import (seed 004): runs, items, events, and the legacy batches."""
