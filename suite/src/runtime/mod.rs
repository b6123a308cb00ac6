//! Runtime mode (DESIGN §6): recording plugins, scenarios, and the rules a runtime is judged by.

pub mod evidence;
pub mod log;
pub mod mode;
pub mod recorder;
pub mod rules;
pub mod scenario;
