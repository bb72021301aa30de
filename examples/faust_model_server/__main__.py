"""``python -m examples.faust_model_server worker -l info``: Faust's command line for the app."""

from examples.faust_model_server.app import app

if __name__ == "__main__":
    app.main()
