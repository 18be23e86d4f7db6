"""The API's wire shapes (SPEC "Wire shapes") as msgspec Structs.

Request bodies forbid unknown fields and bound every string and list, so bad input is a
400 from validation, never a 500 from the database.
"""
