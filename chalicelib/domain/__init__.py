"""Pure domain code: no boto3, no subprocess. Tested fast, without an emulator."""
