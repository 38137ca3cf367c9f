"""What the vault holds, as typed values: results, names, the note format, the owner identity."""
