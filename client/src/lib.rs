//! Signet client library. The `signet` command and its verification workflow live here.
