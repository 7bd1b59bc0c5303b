"""Arrays derived from a class or group list are built once per list object, never from a stale entry."""

from recognizer.identity_cache import MAX_ENTRIES, by_identity


def counting():
    built = []

    @by_identity
    def size(items, extra=0):
        built.append(items)
        return len(items) + extra

    return size, built


def test_the_same_list_is_built_once_and_an_equal_other_list_gets_its_own_entry():
    size, built = counting()
    first, twin = [1, 2, 3], [1, 2, 3]
    assert (size(first), size(first), size(twin)) == (3, 3, 3)
    assert [b is first for b in built] == [True, False]
    assert size(first, 10) == 13 and len(built) == 3  # the other arguments are part of the key


def test_the_cache_stays_bounded_and_still_answers_after_it_is_cleared():
    size, built = counting()
    lists = [[0] * n for n in range(MAX_ENTRIES + 3)]
    assert [size(items) for items in lists] == list(range(MAX_ENTRIES + 3))
    assert size(lists[0]) == 0 and len(built) == MAX_ENTRIES + 4  # cleared when full: built again, rightly
