"""The sequencer daemon: admission, sequencing, the durable log, batching, defence."""
