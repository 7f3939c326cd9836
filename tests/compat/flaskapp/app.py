"""A small Flask application for kb's compatibility tests: a template, static
files, a POST body, and a streamed (chunked) response. Static files come
from $KB_FLASK_STATIC.

  python3 app.py PORT          the Werkzeug development server (threaded)
  gunicorn app:app ...         under gunicorn
"""
import hashlib
import os
import sys

from flask import Flask, Response, render_template, request

app = Flask(__name__, static_folder=os.environ.get("KB_FLASK_STATIC", "static"))


@app.route("/")
def index():
    return render_template("index.html", name="kb")


@app.route("/echo", methods=["POST"])
def echo():
    body = request.get_data()
    return "%d %s\n" % (len(body), hashlib.sha256(body).hexdigest())


@app.route("/form", methods=["POST"])
def form():
    text = request.form.get("text", "")
    return "%d %s\n" % (len(text), hashlib.sha256(text.encode()).hexdigest())


def stream_chunk(i):
    return (b"%08d" % i) * 512  # 4 KiB, deterministic


@app.route("/stream/<int:n>")
def stream(n):
    def gen():
        for i in range(n):
            yield stream_chunk(i)
    return Response(gen(), mimetype="application/octet-stream")


if __name__ == "__main__":
    print("ready", flush=True)
    app.run(host="0.0.0.0", port=int(sys.argv[1]), threaded=True)
