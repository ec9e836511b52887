{#- The split bucket (0-99) of an accident: an MD5 of its number salted with the seed, so it
    depends on nothing but Num_Acc (not on load order, other rows or DuckDB's version). -#}
{% macro split_bucket(num_acc) -%}
    cast({{ md5_prefix_as_integer("cast(" ~ num_acc ~ " as varchar) || '-' || '" ~ var("split_seed") ~ "'") }} % 100 as integer)
{%- endmacro %}

{#- The first 8 hex digits (32 bits) of the MD5 of `text`, as an unsigned integer: the same
    number in every warehouse and in Python (int(md5(...).hexdigest()[:8], 16)), so an
    accident is in the same split on DuckDB and PostgreSQL. -#}
{% macro md5_prefix_as_integer(text) -%}
    {{ return(adapter.dispatch('md5_prefix_as_integer')(text)) }}
{%- endmacro %}

{% macro default__md5_prefix_as_integer(text) -%}
    cast('0x' || left(md5({{ text }}), 8) as ubigint)
{%- endmacro %}

{#- A bit string of 32 bits cast to BIGINT is read unsigned (0 to 2^32 - 1). -#}
{% macro postgres__md5_prefix_as_integer(text) -%}
    cast(cast('x' || left(md5({{ text }}), 8) as bit(32)) as bigint)
{%- endmacro %}

{% macro split_from_bucket(bucket) -%}
    case
        when {{ bucket }} < {{ var("split_train_percent") }} then 'train'
        when {{ bucket }} < {{ var("split_train_percent") + var("split_validation_percent") }} then 'validation'
        else 'test'
    end
{%- endmacro %}
