"""hello: the smallest function; measures the runtime's fixed cost."""


def handler(arg):
    return "Hello," + arg + "!"
