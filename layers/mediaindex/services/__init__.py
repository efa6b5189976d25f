"""Use cases. Services talk only to ports and the domain: no boto3, no FastAPI, no SQL here."""
