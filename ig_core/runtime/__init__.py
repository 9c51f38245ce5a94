"""What the engine runs on besides the device: the lock under which sessions take turns batch by batch, and the
host allocator's freed memory."""
