import errno
import pickle

import pytest

from rustyasg.data import (
    DataFormatError,
    MalformedDataError,
    MissingDataFileError,
    MissingDependencyError,
    TruncatedDataError,
)


@pytest.mark.parametrize("cls", [DataFormatError, MissingDataFileError, TruncatedDataError, MalformedDataError])
def test_format_errors_name_the_file_and_survive_pickling(cls):
    error = cls("data/train-images-idx3-ubyte", "has 10 data bytes", "784 bytes")
    assert str(error) == "data/train-images-idx3-ubyte: has 10 data bytes (expected 784 bytes)"
    assert isinstance(error, DataFormatError) and isinstance(error, ValueError)
    copy = pickle.loads(pickle.dumps(error))  # errors cross process boundaries intact
    assert type(copy) is cls and str(copy) == str(error) and copy.expected == "784 bytes"


def test_missing_file_is_also_a_file_not_found_error():
    error = MissingDataFileError("a.pkl.gz", "no such file")
    assert isinstance(error, FileNotFoundError)
    assert error.errno == errno.ENOENT and error.filename == "a.pkl.gz" and str(error) == "a.pkl.gz: no such file"


def test_missing_dependency_names_the_pip_command():
    error = MissingDependencyError("tokenizers", "loading tokenizer.json")
    assert isinstance(error, ImportError) and error.name == "tokenizers"
    assert str(error) == "loading tokenizer.json needs the optional package tokenizers: pip install tokenizers"
