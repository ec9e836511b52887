{#- Each code column names its code-book entry once, as `meta.codes` on the staging column
    that decodes it (`vehicules.catv`); a column name means the same in every model. These
    macros read that declaration, so tests and labels never repeat it. -#}

{#- The code-book entry ("table.column") of a code column, from the model YAML. Known only
    when dbt executes (the graph is empty while it parses). -#}
{% macro codebook_entry(column_name) -%}
    {%- if not execute -%}{{ return(none) }}{%- endif -%}
    {%- for node in graph.nodes.values() if node.resource_type == 'model' -%}
        {%- set column = node.columns.get(column_name) -%}
        {%- if column and column.meta.get('codes') -%}{{ return(column.meta['codes']) }}{%- endif -%}
    {%- endfor -%}
    {{ exceptions.raise_compiler_error("No model declares meta.codes for the column " ~ column_name) }}
{%- endmacro %}

{#- Every code column's code -> label map, one row: a query cross-joins it once and looks
    each value up (`code_label`). A map lookup per value is what makes 28 labels cheap on
    1.9 M road users: a subquery per value took 212 s at national scale. -#}
{% macro code_label_maps() -%}
    {%- set columns = [] -%}
    {%- if execute -%}
        {%- for node in graph.nodes.values() if node.resource_type == 'model' -%}
            {%- for column in node.columns.values() if column.meta.get('codes') and column.name not in columns -%}
                {%- do columns.append(column.name) -%}
            {%- endfor -%}
        {%- endfor -%}
    {%- endif %}
    select
        {%- for column in columns %}
            {{ label_map_agg('code', 'label_en',
                "codebook_entry = '" ~ codebook_entry(column) ~ "' and code is not null") }} as {{ column }}__labels,
        {%- endfor %}
        count(*) as codes
    from {{ ref('stg_codebook_codes') }}
{%- endmacro %}

{#- The English label of a code column's value (`code`, by default the column itself), looked
    up in the maps of `code_label_maps`, cross-joined into the query; a code the code book
    does not know reads "unknown code N" (the accepted_codes test counts them). -#}
{% macro code_label(column_name, code=none) -%}
    coalesce(
        {{ label_map_lookup(column_name ~ '__labels', 'cast(' ~ (code or column_name) ~ ' as varchar)') }},
        'unknown code ' || cast({{ code or column_name }} as varchar)
    )
{%- endmacro %}

{#- A value as the code book writes codes: text without leading zeros or ".0" (raw `dep`
    "010" and "590.0" are "10" and "590"; letters such as `gps` "M" stay as they are). -#}
{% macro codebook_code(value) -%}
    {%- set number = try_cast_double('cast(' ~ value ~ ' as varchar)') -%}
    coalesce(
        {#- a number beyond INTEGER stays as written (DuckDB's try_cast gave NULL there too) #}
        case when abs({{ number }}) < 2147483648 then cast(cast({{ number }} as integer) as varchar) end,
        cast({{ value }} as varchar)
    )
{%- endmacro %}
