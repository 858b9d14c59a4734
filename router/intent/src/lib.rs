//! Switchyard's intent classifier (router stage 2).
