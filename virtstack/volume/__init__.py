"""The block-storage service: volume API (below HTTP), manager, backends."""
