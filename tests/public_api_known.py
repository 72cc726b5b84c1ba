# ruff: noqa: E501  (generated: one line per known failure)
"""Public-API walk cases that still fail on main: what fails, the file, the owner.

Generated from a run of tests/test_public_api_walk.py on branch `conformance` and triaged after
the merge (branch `triage`): every case that now passes was deleted; what is left is in
captum_ext/data/ and the CLI, which other helpers are changing (owner: the lead). Each is
``xfail(strict=True)``: when the fix lands the case passes, the strict xfail turns red, and
its line here is deleted."""

KNOWN = {
    "test_bad_parameters[captum_ext.data:StampNet-num_classes=0]":
        "Failed: DID NOT RAISE ValueError (data/); owner: none (data/ has no owner: lead)",
    "test_bad_parameters[captum_ext.data:StampNet-width=0]":
        "Failed: DID NOT RAISE ValueError (data/); owner: none (data/ has no owner: lead)",
    "test_bad_parameters[captum_ext.data:load_photo-size=0]":
        "RuntimeError: Input and output sizes should be greater than 0, but got input (H: 512, W: 512) output (H: 0, W: (data/); owner: none (data/ has no owner: lead)",
    "test_bad_parameters[captum_ext.data:load_photos-names='astronaut']":
        "ValueError: `name` must be one of ('astronaut', 'chelsea', 'coffee', 'rocket', 'hubble_deep_field', 'immunohis (data/); owner: none (data/ has no owner: lead)",
    "test_bad_parameters[captum_ext.data:load_photos-size=0]":
        "RuntimeError: Input and output sizes should be greater than 0, but got input (H: 512, W: 512) output (H: 0, W: (data/); owner: none (data/ has no owner: lead)",
    "test_bad_parameters[captum_ext.data:stamp_recall-batch_size=0]":
        "AssertionError: message does not name 'batch_size': 'range() arg 3 must not be zero' assert None + where None  (data/); owner: none (data/ has no owner: lead)",
    "test_empty_batch[captum_ext.data:StampedImages-n=0]":
        "ValueError: `n` must be >= 1, got 0 (data/); owner: none (data/ has no owner: lead)",
    "test_empty_batch[captum_ext.data:load_photos-names=[]]":
        "RuntimeError: stack expects a non-empty TensorList (data/); owner: none (data/ has no owner: lead)",
    "test_empty_batch[captum_ext.data:make_stamped_batch-n=0]":
        "ValueError: `n` must be >= 1, got 0 (data/); owner: none (data/ has no owner: lead)",
    "test_empty_batch[captum_ext.data:stamp_recall-batch_of_0]":
        "ValueError: torch.cat(): expected a non-empty list of Tensors (data/); owner: none (data/ has no owner: lead)",
    "test_nan[captum_ext.data:load_stamp_classifier-recipe_lr_nan]":
        "AssertionError: message does not name 'lr|recipe': 'Invalid learning rate: nan' assert None + where None = <fu (data/); owner: none (data/ has no owner: lead)",
    "test_nan[captum_ext.data:stamp_recall-nan_images]":
        "Failed: DID NOT RAISE ValueError (data/); owner: none (data/ has no owner: lead)",
    "test_nan[captum_ext.data:train_stamp_classifier-recipe_lr_nan]":
        "AssertionError: message does not name 'lr|recipe': 'Invalid learning rate: nan' assert None + where None = <fu (data/); owner: none (data/ has no owner: lead)",
    "test_shapes[captum_ext.data:stamp_recall-labels_other_length]":
        "Failed: DID NOT RAISE ValueError (data/); owner: none (data/ has no owner: lead)",
}
