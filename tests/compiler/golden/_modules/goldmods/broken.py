import json


def load_settings():
    return json.loads("{not json")


SETTINGS = load_settings()
