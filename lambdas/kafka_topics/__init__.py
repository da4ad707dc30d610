"""The kafka-topics function: creates or updates the stack's topics on MSK Serverless."""
