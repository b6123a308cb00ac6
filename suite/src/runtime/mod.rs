//! Runtime mode (DESIGN §6): recording plugins, scenarios, and the rules a runtime is judged by.
