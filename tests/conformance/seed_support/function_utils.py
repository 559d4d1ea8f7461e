"""Stand-in for the seed notebook's helper module ``function_utils``.

The notebook calls ``add_prime_numbers(func_args)`` with the tool call's parsed
arguments, a dict ``{"prime_numbers": [...]}``, and treats the result as an int
(``sum_of_primes % 2``).
"""


def add_prime_numbers(arguments):
    """The sum of ``arguments["prime_numbers"]`` (a bare list is accepted too)."""
    numbers = arguments["prime_numbers"] if isinstance(arguments, dict) else arguments
    return sum(int(n) for n in numbers)
