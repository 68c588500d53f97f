"""The pure domain model: no file, network or SDK access lives here."""
