//! Berth: a durable, Redis-compatible server for background-job systems.
//!
//! The binary (`main.rs`) wires these layers together; see docs/ARCHITECTURE.md.

pub mod commands;
pub mod config;
pub mod config_table;
pub mod db;
pub mod persist;
pub mod protocol;
pub mod rdb;
pub mod scripting;
pub mod server;
