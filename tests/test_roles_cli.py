"""``edgeprune roles``: the role table of a model, and one-line errors for bad input."""


def test_roles_prints_the_lenet5_table(run_cli):
    code, out, err = run_cli("roles", "lenet5", "--in-channels", "1", "--image-size", "28")
    assert code == 0, err
    assert "classifier 1, conv 2, linear 1" in out
    lines = [line for line in out.splitlines() if "features." in line or "classifier." in line]
    assert len(lines) == 4
    assert "features.0" in lines[0] and "conv" in lines[0] and "500" in lines[0] and "0-0.1 " in lines[0]
    assert "classifier.0" in lines[2] and "linear" in lines[2] and "400,000" in lines[2] and "0.85-0.98" in lines[2]
    assert "classifier.2" in lines[3] and "classifier" in lines[3].split("classifier.2")[1]


def test_roles_takes_sizes_from_a_dataset_and_rule_overrides(run_cli):
    code, out, err = run_cli("roles", "lenet300", "--dataset", "digits", "--rule", "linear=[0.95,0.995]")
    assert code == 0, err
    assert "64x1" not in out and "300x64" in out  # 8x8 digits flattened to 64 inputs
    assert out.count("0.95-0.995") == 2


def test_roles_bad_input_exits_2_with_one_line(run_cli):
    for args, words in [
        (("roles", "lenet5", "--dataset", "digits", "--image-size", "28"), "--image-size"),
        (("roles", "nosuchmodel"), "nosuchmodel"),
        (("roles", "vit", "--rule", "linear=[0.9,0.1]"), "linear"),
        (("roles", "vit", "--image-size", "0"), "--image-size"),
    ]:
        code, out, err = run_cli(*args)
        assert code == 2, args
        assert err.startswith("error: ") and err.count("\n") == 1 and words in err, err
