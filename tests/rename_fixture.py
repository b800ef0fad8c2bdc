"""The function the next-edit tests rename a local of: `count` in code (four uses), in a comment and in a string."""

SRC = '''\
def total_of(items):
    count = 0
    for item in items:
        count += item.price  # count each
    print("count", count)
    return count
'''
# every use of the local renamed; the comment and the string kept
RENAMED = SRC.replace("count = 0", "total = 0").replace("count += item", "total += item").replace(
    '"count", count)', '"count", total)').replace("return count", "return total")
