"""Column lengths the app defines; revision r06 imports them, as real revisions do."""

SKU_LENGTH = 64
