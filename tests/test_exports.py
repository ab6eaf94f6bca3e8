import localmem


def test_all_is_sorted_and_complete() -> None:
    public = {name for name in dir(localmem) if not name.startswith("_") and name[0].isupper()}
    assert localmem.__all__ == sorted(localmem.__all__)
    assert public <= set(localmem.__all__)
    for name in localmem.__all__:
        assert hasattr(localmem, name), name


def test_every_error_shares_one_root() -> None:
    errors = [getattr(localmem, n) for n in localmem.__all__ if n.endswith("Error")]
    assert errors
    for error in errors:
        assert issubclass(error, localmem.LocalmemError), error
