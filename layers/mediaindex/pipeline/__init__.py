"""The pipeline: a spec written once as data, plain step functions, and two executors
(the local worker pool and Step Functions on AWS Batch)."""
