"""The write side: the `Registry` application, one method per user intent."""
