//! See tests/: the end-to-end suite of pg_forget.
