"""Byte ingress: one verified chunk at a time, streamed into the blob store."""
