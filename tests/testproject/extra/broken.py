raise ImportError("this module is broken on purpose")
