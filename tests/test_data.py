import pytest
import torch

from captum_ext.data import GLYPH_NAMES, StampedImages, glyph_mask, load_photos, make_stamped_batch


def test_deterministic_per_seed_and_different_across_seeds():
    a = make_stamped_batch(64, seed=5)
    b = make_stamped_batch(64, seed=5)
    c = make_stamped_batch(64, seed=6)
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels) and torch.equal(a.masks, b.masks)
    assert not torch.equal(a.images, c.images)


def test_masks_match_the_pasted_pixels_exactly():
    batch = make_stamped_batch(200, seed=1)
    fp = batch.masks[:, 0].bool()
    stamped = batch.labels < 4
    # inside the footprint every pixel equals the stamp colour
    colour_img = batch.colours[:, :, None, None].expand_as(batch.images)
    assert torch.equal(batch.images.permute(0, 2, 3, 1)[fp], colour_img.permute(0, 2, 3, 1)[fp])
    # the footprint is exactly the glyph at the recorded position
    for i in torch.nonzero(stamped).flatten()[:20].tolist():
        r, c = batch.positions[i].tolist()
        expected = torch.zeros(64, 64, dtype=torch.bool)
        expected[r : r + 12, c : c + 12] = glyph_mask(GLYPH_NAMES[batch.labels[i]], 12)
        assert torch.equal(fp[i], expected)
    assert not fp[~stamped].any()
    # every stamped image has a footprint (an unstamped one has none, above)
    assert (fp.sum((1, 2)) > 0).eq(stamped).all()


def test_positions_cover_the_frame_and_labels_cover_the_classes():
    batch = make_stamped_batch(4000, seed=2)
    pos = batch.positions[batch.labels < 4]
    assert pos.min().item() == 0 and pos.max().item() == 64 - 12
    hist = torch.histc(pos[:, 1].float(), bins=4, min=0, max=53)
    assert (hist > 0.15 * len(pos)).all()  # roughly uniform over the four quarters
    counts = torch.bincount(batch.labels, minlength=5)
    assert (counts > 600).all()


def test_stamp_contrasts_with_background():
    batch = make_stamped_batch(300, seed=4)
    stamped = batch.labels < 4
    lum = batch.colours[stamped] @ torch.tensor([0.299, 0.587, 0.114])
    assert ((lum <= 0.3) | (lum >= 0.7)).all()


def test_dataset_items_and_bad_arguments():
    data = StampedImages(10, image_size=32, stamp_size=8, num_glyphs=3, seed=0)
    image, label, mask = data[3]
    batch = make_stamped_batch(10, image_size=32, stamp_size=8, num_glyphs=3, seed=0)
    assert torch.equal(image, batch.images[3]) and torch.equal(mask, batch.masks[3])
    assert label == batch.labels[3] and data.num_classes == 4
    assert len(data) == 10 and data.class_names[-1] == "no stamp"
    with pytest.raises(ValueError, match="num_glyphs"):
        make_stamped_batch(4, num_glyphs=99)
    with pytest.raises(ValueError, match="image_size"):
        make_stamped_batch(4, image_size=8, stamp_size=12)
    with pytest.raises(TypeError, match="n"):
        make_stamped_batch(2.5)


def test_glyphs_are_distinct():
    masks = torch.stack([glyph_mask(g, 12) for g in GLYPH_NAMES])
    flat = masks.flatten(1).float()
    assert torch.cdist(flat, flat).add(torch.eye(len(GLYPH_NAMES)) * 99).min() > 1


def test_photos_are_scikit_images_colour_photos():
    import skimage.data

    from captum_ext.data import load_photo
    from captum_ext.data.photos import PHOTO_NAMES

    photos = load_photos(size=32)
    assert len(photos) == len(PHOTO_NAMES)
    for name, photo in zip(PHOTO_NAMES, photos):
        raw = getattr(skimage.data, name)()
        raw = raw[0] if isinstance(raw, tuple) else raw  # stereo_motorcycle: (left, right, disp.)
        raw = torch.from_numpy(raw[..., :3].copy()).permute(2, 0, 1).float() / 255
        assert torch.equal(load_photo(name), raw), name  # the photo itself, RGB, / 255
        # the antialiased resize keeps each channel's mean (a wrong crop or channel would not)
        torch.testing.assert_close(photo.mean((1, 2)), raw.mean((1, 2)), rtol=0, atol=0.02, msg=name)
    assert (photos.std(dim=(2, 3)) > 0.02).all()  # no flat channel


def test_empty_batch_has_the_shapes_of_a_full_one():
    empty = make_stamped_batch(0, image_size=16, stamp_size=6, seed=2)
    full = make_stamped_batch(3, image_size=16, stamp_size=6, seed=2)
    for e, f in zip((empty.images, empty.labels, empty.masks, empty.positions, empty.colours),
                    (full.images, full.labels, full.masks, full.positions, full.colours)):
        assert e.shape == (0,) + f.shape[1:] and e.dtype == f.dtype
    assert len(StampedImages(0, image_size=16, stamp_size=6)) == 0


def test_load_photos_names_size_and_empty():
    from captum_ext.data import load_photo

    with pytest.raises(TypeError, match="names"):
        load_photos("astronaut", size=8)  # a str is not a list of names
    with pytest.raises(ValueError, match="size"):
        load_photos(["astronaut"], size=(8, 0))
    with pytest.raises(ValueError, match="size"):
        load_photo("astronaut", size=0)
    assert load_photos([], size=(8, 12)).shape == (0, 3, 8, 12)
    # (H, W) as a tuple or a list gives the same pixels as load_photo
    torch.testing.assert_close(load_photos(["coffee"], size=[8, 12])[0], load_photo("coffee", (8, 12)))
