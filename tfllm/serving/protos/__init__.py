"""tfllm's gRPC GenerationService: `generation.proto` and the Python code protoc
generates from it (checked in, as tensorflow-serving-api ships its stubs, so the
server needs no compiler). After editing the .proto, regenerate from the repo root:

    .venv/bin/python -m grpc_tools.protoc -I. --python_out=. --grpc_python_out=. \\
        tfllm/serving/protos/generation.proto

(tests/serving/test_streaming.py checks that the two agree).
"""
