"""The distributed backend: S3 for bytes, SQS for storage events, DynamoDB for metadata."""
