"""The CDK app's constructs: one concern per file, composed by `stack.MediaIndexStack`."""
