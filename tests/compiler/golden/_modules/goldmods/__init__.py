"""Consumer modules for the golden tests: good ones and every way of getting the contract wrong."""
