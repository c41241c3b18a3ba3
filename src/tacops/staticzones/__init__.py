"""Static zones: publish the files the apps download from Apache to buckets, and prove parity."""
