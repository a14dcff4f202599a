"""tus 1.0.0 (https://tus.io/protocols/resumable-upload) over the same upload sessions as the chunk API."""
