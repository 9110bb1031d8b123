//! Demo domain seed data.
