"""The HTTP app: the same FastAPI app runs under uvicorn locally and under Mangum in Lambda."""
