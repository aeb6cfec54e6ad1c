"""The version shared by the compiler, the runtime and the generated artifact."""

VERSION = "0.1.0"
