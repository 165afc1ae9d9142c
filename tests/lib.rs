//! Integration tests of nanodex live in `it/` (one test binary); fixtures in `fixtures/`. This library is empty.
