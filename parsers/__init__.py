"""nianbao parsers: bytes of a published report -> one block model -> sections and facts."""
